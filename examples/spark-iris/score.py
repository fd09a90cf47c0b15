"""Scoring driver of the Spark example. The runtime gives it the globals ``spark`` and
``sc`` and, through service_schema.json (type 2), the request's rows as a Spark
DataFrame; the model is the unpacked pipeline directory, loaded by relative path."""

from pyspark.ml import PipelineModel

model = None


def init():
    global model
    model = PipelineModel.load("iris_pipeline")


def run(input_df):
    return model.transform(input_df).select("prediction", "probability")
