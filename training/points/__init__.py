"""``points``: linear regression from hours studied to points (the lectures' example)."""
