"""Silver and gold jobs of the Epic FHIR lakehouse."""
