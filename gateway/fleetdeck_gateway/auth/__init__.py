"""Who is asking and from where: tokens, sessions, revocation, the login guard, the peer address."""
