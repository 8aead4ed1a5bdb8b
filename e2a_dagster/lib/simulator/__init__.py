"""The demo and test simulator with its ground-truth oracles and the mock Shopify store (not production paths)."""
