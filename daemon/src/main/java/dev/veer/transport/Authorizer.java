package dev.veer.transport;

import com.google.common.collect.ImmutableMap;
import com.google.common.collect.ImmutableSet;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.util.EnumSet;
import java.util.Optional;
import java.util.Set;
import javax.naming.InvalidNameException;
import javax.naming.ldap.LdapName;
import javax.naming.ldap.Rdn;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Refuses calls whose caller lacks the role the method needs. The caller is known by its bearer
 * token or by the common name of its verified client certificate; either may grant roles. A refusal
 * is UNAUTHENTICATED (no known identity) or PERMISSION_DENIED (known, but not allowed), and is
 * logged with the method and the peer.
 */
public final class Authorizer implements ServerInterceptor {
  private static final Logger log = LoggerFactory.getLogger(Authorizer.class);

  private final AccessPolicy policy;

  /** Full method name to the roles that may call it; a method not listed is refused. */
  private final ImmutableMap<String, ImmutableSet<Role>> methods;

  public Authorizer(AccessPolicy policy, ImmutableMap<String, ImmutableSet<Role>> methods) {
    this.policy = policy;
    this.methods = methods;
  }

  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(
      ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
    if (policy.allowsAll()) {
      return next.startCall(call, headers);
    }
    String method = call.getMethodDescriptor().getFullMethodName();
    Set<Role> needed = methods.getOrDefault(method, ImmutableSet.of());
    Set<Role> granted = EnumSet.noneOf(Role.class);
    boolean known = false;
    String token = headers.get(BearerToken.AUTHORIZATION);
    if (token != null && token.startsWith(BearerToken.PREFIX)) {
      Optional<ImmutableSet<Role>> roles =
          policy.rolesOfToken(token.substring(BearerToken.PREFIX.length()));
      known |= roles.isPresent();
      roles.ifPresent(granted::addAll);
    }
    Optional<String> commonName = clientCommonName(call);
    if (commonName.isPresent()) {
      Optional<ImmutableSet<Role>> roles = policy.rolesOfCertificate(commonName.get());
      known |= roles.isPresent();
      roles.ifPresent(granted::addAll);
    }
    if (granted.stream().anyMatch(needed::contains)) {
      return next.startCall(call, headers);
    }
    Object peer = call.getAttributes().get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR);
    Status status =
        known
            ? Status.PERMISSION_DENIED.withDescription(
                method + " needs one of the roles " + needed + "; the caller has " + granted)
            : Status.UNAUTHENTICATED.withDescription(
                method + " needs a token or client certificate granted one of " + needed);
    log.warn(
        "refused {} from {} (certificate {}): {}",
        method,
        peer,
        commonName.orElse("none"),
        status.getDescription());
    call.close(status, new Metadata());
    return new ServerCall.Listener<>() {};
  }

  private static Optional<String> clientCommonName(ServerCall<?, ?> call) {
    SSLSession session = call.getAttributes().get(Grpc.TRANSPORT_ATTR_SSL_SESSION);
    if (session == null) {
      return Optional.empty();
    }
    try {
      Certificate[] chain = session.getPeerCertificates();
      if (chain.length == 0 || !(chain[0] instanceof X509Certificate leaf)) {
        return Optional.empty();
      }
      for (Rdn rdn : new LdapName(leaf.getSubjectX500Principal().getName()).getRdns()) {
        if (rdn.getType().equalsIgnoreCase("CN")) {
          return Optional.of(rdn.getValue().toString());
        }
      }
    } catch (SSLPeerUnverifiedException | InvalidNameException e) {
      return Optional.empty();
    }
    return Optional.empty();
  }
}
