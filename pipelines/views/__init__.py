"""Pipeline and experiment pages (the REST API lives in ``pipelines.api``)."""
