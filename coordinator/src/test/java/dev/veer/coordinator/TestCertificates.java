package dev.veer.coordinator;

import java.io.IOException;
import java.io.StringWriter;
import java.math.BigInteger;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.time.Instant;
import java.util.Date;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/** A throwaway CA and certificates it signs, written as PEM files, for TLS tests. */
final class TestCertificates {
  private final Path dir;
  private final KeyPair caKeys;
  private final X509Certificate ca;
  private long serial = 1;

  TestCertificates(Path dir) throws Exception {
    this.dir = dir;
    this.caKeys = keys();
    X500Name name = new X500Name("CN=veer-test-ca");
    this.ca =
        new JcaX509CertificateConverter()
            .getCertificate(
                new JcaX509v3CertificateBuilder(
                        name,
                        BigInteger.valueOf(serial++),
                        Date.from(Instant.now().minus(Duration.ofMinutes(1))),
                        Date.from(Instant.now().plus(Duration.ofDays(1))),
                        name,
                        caKeys.getPublic())
                    .addExtension(Extension.basicConstraints, true, new BasicConstraints(true))
                    .build(
                        new JcaContentSignerBuilder("SHA256withECDSA").build(caKeys.getPrivate())));
    write(dir.resolve("ca.pem"), ca);
  }

  Path ca() {
    return dir.resolve("ca.pem");
  }

  /** Writes {@code <name>.pem} and {@code <name>.key} for a certificate with this common name. */
  Path[] issue(String name, String commonName) throws Exception {
    KeyPair keys = keys();
    X509Certificate cert =
        new JcaX509CertificateConverter()
            .getCertificate(
                new JcaX509v3CertificateBuilder(
                        new X500Name("CN=veer-test-ca"),
                        BigInteger.valueOf(serial++),
                        Date.from(Instant.now().minus(Duration.ofMinutes(1))),
                        Date.from(Instant.now().plus(Duration.ofDays(1))),
                        new X500Name("CN=" + commonName),
                        keys.getPublic())
                    .addExtension(
                        Extension.subjectAlternativeName,
                        false,
                        new GeneralNames(
                            new GeneralName[] {
                              new GeneralName(GeneralName.iPAddress, "127.0.0.1"),
                              new GeneralName(GeneralName.dNSName, "localhost")
                            }))
                    .build(
                        new JcaContentSignerBuilder("SHA256withECDSA").build(caKeys.getPrivate())));
    Path certFile = dir.resolve(name + ".pem");
    Path keyFile = dir.resolve(name + ".key");
    write(certFile, cert);
    // PKCS#8, which gRPC's TLS credentials read.
    StringWriter pem = new StringWriter();
    try (JcaPEMWriter writer = new JcaPEMWriter(pem)) {
      writer.writeObject(
          new org.bouncycastle.openssl.jcajce.JcaPKCS8Generator(keys.getPrivate(), null));
    }
    Files.writeString(keyFile, pem.toString());
    return new Path[] {certFile, keyFile};
  }

  private static KeyPair keys() throws Exception {
    KeyPairGenerator generator = KeyPairGenerator.getInstance("EC");
    generator.initialize(256);
    return generator.generateKeyPair();
  }

  private static void write(Path file, Object pemObject) throws IOException {
    StringWriter pem = new StringWriter();
    try (JcaPEMWriter writer = new JcaPEMWriter(pem)) {
      writer.writeObject(pemObject);
    }
    Files.writeString(file, pem.toString());
  }
}
