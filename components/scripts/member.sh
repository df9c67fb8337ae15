# Create step of a node's membership command, run on the server that would remove it: nothing to do.
# Its delete (leave.sh) drains the node and deletes its Node object before the node's K3s is uninstalled.
# Parameters: NODE_NAME (the server this runs on) MEMBER ROLE WAIT_SECONDS (used by leave.sh)
: "${ROLE:?}" "${WAIT_SECONDS:?}"
: "${MEMBER:?}"
say "$ROLE $MEMBER is a member; if it leaves the stack it is drained and deleted from the cluster on $NODE_NAME (drain bound ${WAIT_SECONDS}s)"
