"""Deployment units. Each stack composes constructs from `constructs/` and wires them."""
