# Create step of an agent's teardown command: nothing to do. Its delete (uninstall.sh) is what matters:
# the command waits for every server, so `pulumi destroy` uninstalls agents before any server.
# Parameters: NODE_NAME
say "joined; on destroy this agent is uninstalled before the servers"
