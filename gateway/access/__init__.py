"""Who may see whose data: legitimate relationships, data sharing agreements and break-glass (``policy``)."""
