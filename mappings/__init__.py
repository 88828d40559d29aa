"""Pure mappings between the gateway's records and FHIR R4 resources. No I/O, no settings, no gateway imports."""
