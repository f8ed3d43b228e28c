"""Thin FastAPI routers; business rules live in app.services."""
