"""Pure ML code for docclass: ingestion, OCR, features, candidate models, evaluation.

Nothing in this package imports prefect, mlflow, bentoml or label_studio_sdk.
"""
