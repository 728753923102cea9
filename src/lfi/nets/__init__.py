"""Networks: conditional normalizing flows (flowjax) and classifiers (equinox)."""
