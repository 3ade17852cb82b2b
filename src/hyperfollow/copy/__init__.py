"""Copy trading: pure decisions (sizing, direction, guards, delta sync) and the async service around them."""
