"""The routes of SPEC section 12, one module per resource."""
