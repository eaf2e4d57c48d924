"""The payment API: its REST calls (api), values (models), and paying for agreements (payments)."""
