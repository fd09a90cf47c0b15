"""Train the Spark example: a VectorAssembler + LogisticRegression pipeline on iris,
saved as the directory ``iris_pipeline/`` and packed as ``iris_pipeline.tar.gz`` (the
model to register, with ``unpack: true``). ``predictions.json`` holds the pipeline's
own predictions for every iris row, to compare a service's answers with.

    python examples/spark-iris/train.py [OUT_DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tarfile
from pathlib import Path

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
MODEL_DIR = "iris_pipeline"


def iris_rows() -> list[dict[str, float]]:
    from sklearn.datasets import load_iris

    iris = load_iris()
    return [dict(zip(COLUMNS, map(float, features)), label=float(label))
            for features, label in zip(iris.data, iris.target)]


def train(out_dir: Path) -> Path:
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import VectorAssembler
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master("local[2]").appName("moma-spark-iris-train")
             .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.shuffle.partitions", "2").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    try:
        rows = iris_rows()
        frame = spark.createDataFrame(rows)
        pipeline = Pipeline(stages=[VectorAssembler(inputCols=COLUMNS, outputCol="features"),
                                    LogisticRegression(maxIter=100, regParam=0.01)])
        model = pipeline.fit(frame)
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / MODEL_DIR
        shutil.rmtree(target, ignore_errors=True)
        model.write().overwrite().save(str(target))
        scored = model.transform(frame).select(*COLUMNS, "prediction", "probability").collect()
        predictions = [{"row": {c: r[c] for c in COLUMNS}, "prediction": r["prediction"],
                        "probability": r["probability"].toArray().tolist()} for r in scored]
        (out_dir / "predictions.json").write_text(json.dumps(predictions), encoding="utf-8")
    finally:
        spark.stop()
    archive = out_dir / f"{MODEL_DIR}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(target, arcname=MODEL_DIR)
    return archive


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", type=Path, default=Path(__file__).parent)
    print(train(parser.parse_args().out_dir))
