"""Case management: closed-loop enforcement cases and their statutory deadlines."""
