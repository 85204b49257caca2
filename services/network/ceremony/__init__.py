"""The key ceremony for a network spread over hosts: no private key leaves its host.

``straits network init`` makes every key on one machine, which suits a test network.
Institutions running their own nodes instead follow these steps:

1. On each host, ``straits keys generate`` (``request``): the participant's ledger key
   and TLS key stay in the host's directory; a key request goes out. It carries the
   ledger public key, a certificate signing request for the TLS key and the address
   peers reach the node at, and it is signed by both keys, so nobody can put another
   holder's key under their own name.
2. The central bank, which holds the network CA, runs ``straits pki sign``
   (``authority``): it checks each request and issues its TLS certificate.
3. ``straits genesis assemble`` (``assembly``) founds the network from the requests'
   public keys alone.
4. ``straits bundle`` (``assembly``) writes one directory per host with public files
   only (genesis, CA certificate, the host's certificate, its ``node.toml``); copied
   into the host's directory next to its keys, it is a complete node.
"""
