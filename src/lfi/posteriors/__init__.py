"""Posterior objects: sampling, densities, MAP, and safe save/load."""
