# Print K3s's admin kubeconfig. Pulumi runs this with logging off and its output secret.
# Parameters: NODE_NAME
as_root cat /etc/rancher/k3s/k3s.yaml
