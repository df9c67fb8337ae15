"""Storage layer: the stack's StorageClasses (local-path, Longhorn, NFS) and the one default.
Waits for the K3s layer's nodes Ready (and, with the operator's GPU toolkit, the GPU layer settled)."""
