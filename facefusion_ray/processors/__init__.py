"""Frame processors: turn analysed faces into swapped pixels."""
