# shellcheck shell=bash
# Certificates and kubeconfigs of the local cluster; sourced by up.sh and node-up.sh.
# Every certificate is signed by the cluster CA (PKI/ca.crt, PKI/ca.key) that up.sh creates.

# issue_cert PKI NAME CN [ORGANISATION] [SUBJECT_ALT_NAMES]
# Writes PKI/NAME.crt and PKI/NAME.key (server and client usage) unless they exist already,
# signed by the current CA, for the same subject and names: a state directory made by an
# older version of the scripts, or whose CA was recreated, gets fresh ones.
issue_cert() {
  local pki=$1 name=$2 cn=$3 org=${4:-} san=${5:-}
  local subj="/CN=$cn"
  [[ -n $org ]] && subj="/O=$org/CN=$cn"
  local id="$subj|$san"
  if [[ -f $pki/$name.crt && -f $pki/$name.key && -f $pki/$name.id && $(cat "$pki/$name.id") == "$id" ]] \
      && openssl verify -CAfile "$pki/ca.crt" "$pki/$name.crt" >/dev/null 2>&1; then
    return 0
  fi
  openssl req -newkey rsa:2048 -nodes -subj "$subj" \
    -keyout "$pki/$name.key" -out "$pki/$name.csr" 2>/dev/null
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=serverAuth,clientAuth"
    [[ -z $san ]] || echo "subjectAltName=$san"
  } > "$pki/$name.ext"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -extfile "$pki/$name.ext" -out "$pki/$name.crt" 2>/dev/null
  chmod 600 "$pki/$name.key"
  echo "$id" > "$pki/$name.id"
}

# cert_kubeconfig FILE SERVER CA_FILE CERT_FILE KEY_FILE: a kubeconfig authenticating with a
# client certificate.
cert_kubeconfig() {
  cat > "$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: $2
    certificate-authority: $3
users:
- name: user
  user:
    client-certificate: $4
    client-key: $5
contexts:
- name: local
  context: {cluster: local, user: user}
current-context: local
EOF
}
