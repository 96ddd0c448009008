import socket

# Names resolve through edgyd's resolver, which answers only the names the policy lists.
try:
    socket.getaddrinfo("example.com", 443)
    print("example.com resolved")
except OSError:
    print("example.com is not listed")

address = socket.getaddrinfo("pypi.org", 443, socket.AF_INET, socket.SOCK_STREAM)[0][4]
with socket.create_connection(address, timeout=5):
    print("hello from egress")
