"""Identities of pod migration: the CA (its key only in the operator), the operator's own client certificate, and
the node-helpers' certificates the operator signs through CertificateSigningRequests (one node each).

The certificate names (api.OPERATOR_CN, api.helper_cn) come from pmcontract.names, which the node-helper authorizes by.
"""
