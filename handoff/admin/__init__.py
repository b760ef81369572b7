"""The admin pages: the handoff thresholds and rules (more admin tools come here)."""
