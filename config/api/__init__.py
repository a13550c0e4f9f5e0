"""What every API shares. Imports no app."""
