"""The FHIR R4 rest-hook channel: notifications of a Subscription (gateway.sync.subscriptions)."""
