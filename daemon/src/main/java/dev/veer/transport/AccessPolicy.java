package dev.veer.transport;

import com.google.common.collect.ImmutableMap;
import com.google.common.collect.ImmutableSet;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Who may do what: bearer tokens and client-certificate identities (the subject's common name),
 * each granted roles. Read from a file of lines {@code token <secret> <role>[,<role>...]} or {@code
 * cert <common-name> <role>[,...]}; {@code #} starts a comment. An empty policy allows everything,
 * for a cluster on a trusted network only.
 */
public final class AccessPolicy {
  private final ImmutableMap<String, ImmutableSet<Role>> tokens;
  private final ImmutableMap<String, ImmutableSet<Role>> certificates;

  private AccessPolicy(
      Map<String, ImmutableSet<Role>> tokens, Map<String, ImmutableSet<Role>> certificates) {
    this.tokens = ImmutableMap.copyOf(tokens);
    this.certificates = ImmutableMap.copyOf(certificates);
  }

  public static AccessPolicy allowAll() {
    return new AccessPolicy(Map.of(), Map.of());
  }

  public static AccessPolicy parse(List<String> lines, String source) {
    Map<String, ImmutableSet<Role>> tokens = new HashMap<>();
    Map<String, ImmutableSet<Role>> certificates = new HashMap<>();
    for (int i = 0; i < lines.size(); i++) {
      String line = lines.get(i).replaceFirst("#.*", "").trim();
      if (line.isEmpty()) {
        continue;
      }
      String[] fields = line.split("\\s+");
      String where = source + " line " + (i + 1);
      if (fields.length != 3 || !(fields[0].equals("token") || fields[0].equals("cert"))) {
        throw new IllegalArgumentException(
            where
                + ": expected 'token <secret> <roles>' or 'cert <common-name>"
                + " <roles>', got '"
                + line
                + "'");
      }
      Set<Role> roles = EnumSet.noneOf(Role.class);
      for (String role : fields[2].split(",")) {
        try {
          roles.add(Role.valueOf(role.trim().toUpperCase(java.util.Locale.ROOT)));
        } catch (IllegalArgumentException e) {
          throw new IllegalArgumentException(
              where
                  + ": unknown role '"
                  + role
                  + "'; roles are admin, reader,"
                  + " director, agent",
              e);
        }
      }
      (fields[0].equals("token") ? tokens : certificates)
          .put(fields[1], ImmutableSet.copyOf(roles));
    }
    return new AccessPolicy(tokens, certificates);
  }

  public static AccessPolicy fromFile(Path file) {
    try {
      return parse(Files.readAllLines(file, StandardCharsets.UTF_8), file.toString());
    } catch (IOException e) {
      throw new IllegalArgumentException(
          "cannot read the access file " + file + ": " + e.getMessage(), e);
    }
  }

  public boolean allowsAll() {
    return tokens.isEmpty() && certificates.isEmpty();
  }

  /** The roles a token grants, compared in constant time. */
  Optional<ImmutableSet<Role>> rolesOfToken(String token) {
    byte[] given = token.getBytes(StandardCharsets.UTF_8);
    Optional<ImmutableSet<Role>> found = Optional.empty();
    for (Map.Entry<String, ImmutableSet<Role>> e : tokens.entrySet()) {
      if (MessageDigest.isEqual(given, e.getKey().getBytes(StandardCharsets.UTF_8))) {
        found = Optional.of(e.getValue());
      }
    }
    return found;
  }

  Optional<ImmutableSet<Role>> rolesOfCertificate(String commonName) {
    return Optional.ofNullable(certificates.get(commonName));
  }
}
