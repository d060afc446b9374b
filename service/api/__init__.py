"""HTTP layer: route modules, response schemas and request dependencies."""
