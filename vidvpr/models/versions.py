"""Versions of what the models compute, readable without torch (reruns decide with them)."""

# bump when a code change alters descriptors for the same weights (invalidates descriptor caches
# and finished evaluations)
FINGERPRINT_VERSION = 1
