"""Fakes of outside services, for tests (rule 6 of the architecture guide)."""

from tests.fakes.schema_registry import FakeSchemaRegistry

__all__ = ["FakeSchemaRegistry"]
