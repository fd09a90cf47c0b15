"""Scoring driver of a 2017 Azure ML Workbench project, in that year's shape: init()
loads the model directory by relative path and opens the data collectors, run(input_df)
gets a pandas DataFrame (service_schema.json, type 3) and returns json.dumps of the
species. Only `import joblib` is new: scikit-learn no longer ships
`sklearn.externals.joblib`."""

import json

from azureml.datacollector import ModelDataCollector


def init():
    import joblib

    global model, labels, inputs_dc, prediction_dc
    model = joblib.load("iris_model/model.pkl")
    with open("iris_model/labels.json") as handle:
        labels = json.load(handle)
    inputs_dc = ModelDataCollector("iris_model", identifier="inputs")
    prediction_dc = ModelDataCollector("iris_model", identifier="prediction")


def run(input_df):
    inputs_dc.collect(input_df)
    species = [labels[index] for index in model.predict(input_df)]
    prediction_dc.collect(species)
    return json.dumps(species)


if __name__ == "__main__":
    # How the 2017 project wrote service_schema.json, with that year's SDK (which moma's
    # images leave out: a service never runs this).
    import pandas
    from azureml.api.realtime.services import generate_schema
    from azureml.api.schema.dataTypes import DataTypes
    from azureml.api.schema.sampleDefinition import SampleDefinition

    sample = pandas.DataFrame([[5.1, 3.5, 1.4, 0.2]], columns=["sepal length (cm)", "sepal width (cm)",
                                                             "petal length (cm)", "petal width (cm)"])
    generate_schema(run_func=run, inputs={"input_df": SampleDefinition(DataTypes.PANDAS, sample)},
                    filepath="service_schema.json")
