"""2017-style driver with a pandas schema (type 3): run() gets a DataFrame."""
import joblib

model = None


def init():
    global model
    model = joblib.load("model.pkl")


def run(input_df):
    return model.predict(input_df.to_numpy()).tolist()
