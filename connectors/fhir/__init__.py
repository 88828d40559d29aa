"""NHS FHIR connector (an ICS shared care record, an EHR, another gateway): push as transaction Bundles, pull by
``_lastUpdated`` cursor."""
