"""The local conformance target: real Dex, oauth2-proxy, an nginx gateway and KServe model servers on
loopback, configured by the same generators as a stack, so the smoke suite can be proven here."""
