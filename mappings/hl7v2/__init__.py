"""HL7 v2: a fast tokenizer for the hot path; structured mapping of cohort messages to FHIR."""
