"""The provider agent: offers, negotiation, agreements, activities and billing over yagna's REST API."""
