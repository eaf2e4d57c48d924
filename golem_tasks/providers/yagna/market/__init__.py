"""The market API: its REST calls (api), values (models), the demand, negotiation, agreements and offer filters."""
