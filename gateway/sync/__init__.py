"""The sync engine: the outbox relayed to Celery, deliveries to destinations in order, retries and dead letters.

    write ──(same txn)──> outbox ──relay──> delivery rows (one per destination that may receive it)
                                              │  lane = hash(patient) mod lanes: per-patient order
                                              └─> Celery deliver_lane(destination, lane) ──> connector.push
                                                      retry with backoff │ dead letter on refusal │ attempt log

The database is the source of truth: a Celery message only says "look at this lane". A lost message (a killed
worker, the embedded broker restarted, Redis down) costs a delay until the sweep sends another, never a change.
"""
