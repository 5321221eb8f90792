"""Attacks and bad days, bounded in time and count: each must keep failing to hurt poise."""
