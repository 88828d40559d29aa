"""HL7 v2 over MLLP: the listener, the durable inbox and acknowledgements."""
