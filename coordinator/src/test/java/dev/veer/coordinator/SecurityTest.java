package dev.veer.coordinator;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.veer.proto.admin.v1.AdminServiceGrpc;
import dev.veer.proto.admin.v1.CreateServiceRequest;
import dev.veer.proto.admin.v1.ListServicesRequest;
import dev.veer.proto.admin.v1.ServiceSpec;
import dev.veer.proto.director.v1.DirectorReport;
import dev.veer.proto.director.v1.DirectorSyncGrpc;
import dev.veer.proto.director.v1.Hello;
import dev.veer.proto.director.v1.Snapshot;
import dev.veer.proto.types.v1.Protocol;
import dev.veer.transport.AccessPolicy;
import dev.veer.transport.BearerToken;
import dev.veer.transport.TlsFiles;
import dev.veer.transport.Transport;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.RetryOneTime;
import org.apache.zookeeper.KeeperException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.ThrowingConsumer;
import org.junit.jupiter.api.io.TempDir;

/** TLS, mutual TLS, tokens, roles and ZooKeeper ACLs, against real coordinators. */
class SecurityTest {
  @TempDir Path dir;

  static final CreateServiceRequest CREATE =
      CreateServiceRequest.newBuilder()
          .setSpec(
              ServiceSpec.newBuilder()
                  .setName("web")
                  .setVip("203.0.113.10")
                  .setPort(80)
                  .setProtocol(Protocol.TCP))
          .build();

  static Status.Code codeOf(Runnable call) {
    try {
      call.run();
      return Status.Code.OK;
    } catch (StatusRuntimeException e) {
      return e.getStatus().getCode();
    }
  }

  void withCoordinator(
      Optional<TlsFiles> tls, AccessPolicy access, ThrowingConsumer<Coordinator> body)
      throws Throwable {
    try (Coordinator c =
        Coordinator.start(Coordinators.secured("c1", dir.resolve("data"), tls, access))) {
      body.accept(c);
    }
  }

  @Test
  void tokensGrantRolesAndEverythingElseIsRefused() throws Throwable {
    AccessPolicy access =
        AccessPolicy.parse(
            List.of("# ops", "token s3cret-admin admin", "token s3cret-reader reader"), "test");
    withCoordinator(
        Optional.empty(),
        access,
        c -> {
          ManagedChannel channel = Transport.channel(Coordinators.target(c), Optional.empty());
          try {
            var anonymous = AdminServiceGrpc.newBlockingStub(channel);
            var reader = anonymous.withCallCredentials(new BearerToken("s3cret-reader"));
            var adminStub = anonymous.withCallCredentials(new BearerToken("s3cret-admin"));
            var wrong = anonymous.withCallCredentials(new BearerToken("guess"));
            assertThat(
                    codeOf(() -> anonymous.listServices(ListServicesRequest.getDefaultInstance())))
                .isEqualTo(Status.Code.UNAUTHENTICATED);
            assertThat(codeOf(() -> wrong.listServices(ListServicesRequest.getDefaultInstance())))
                .isEqualTo(Status.Code.UNAUTHENTICATED);
            assertThat(codeOf(() -> reader.listServices(ListServicesRequest.getDefaultInstance())))
                .isEqualTo(Status.Code.OK);
            assertThat(codeOf(() -> reader.createService(CREATE)))
                .isEqualTo(Status.Code.PERMISSION_DENIED);
            assertThat(
                    reader
                        .listServices(ListServicesRequest.getDefaultInstance())
                        .getServicesCount())
                .isZero();
            assertThat(codeOf(() -> adminStub.createService(CREATE))).isEqualTo(Status.Code.OK);
            // Refusals are counted, by method and code.
            String list = AdminServiceGrpc.getListServicesMethod().getFullMethodName();
            String create = AdminServiceGrpc.getCreateServiceMethod().getFullMethodName();
            assertThat(Coordinators.callsHandled(c, list, "UNAUTHENTICATED")).isEqualTo(2);
            assertThat(Coordinators.callsHandled(c, create, "PERMISSION_DENIED")).isEqualTo(1);
            assertThat(Coordinators.callsHandled(c, create, "OK")).isEqualTo(1);
          } finally {
            Transport.close(channel);
          }
        });
  }

  @Test
  void mutualTlsKnowsCallersByTheirCertificate() throws Throwable {
    TestCertificates certs = new TestCertificates(dir);
    Path[] server = certs.issue("server", "coordinator");
    Path[] ops = certs.issue("ops", "ops-team");
    Path[] stranger = certs.issue("stranger", "someone-else");
    AccessPolicy access = AccessPolicy.parse(List.of("cert ops-team admin"), "test");
    withCoordinator(
        Optional.of(TlsFiles.server(server[0], server[1], Optional.of(certs.ca()))),
        access,
        c -> {
          String target = "localhost:" + c.port();
          ManagedChannel opsChannel =
              Transport.channel(
                  target,
                  Optional.of(
                      TlsFiles.client(certs.ca(), Optional.of(ops[0]), Optional.of(ops[1]))));
          ManagedChannel strangerChannel =
              Transport.channel(
                  target,
                  Optional.of(
                      TlsFiles.client(
                          certs.ca(), Optional.of(stranger[0]), Optional.of(stranger[1]))));
          ManagedChannel noCertificate =
              Transport.channel(
                  target,
                  Optional.of(TlsFiles.client(certs.ca(), Optional.empty(), Optional.empty())));
          ManagedChannel plaintext = Transport.channel(target, Optional.empty());
          try {
            assertThat(
                    codeOf(
                        () -> AdminServiceGrpc.newBlockingStub(opsChannel).createService(CREATE)))
                .isEqualTo(Status.Code.OK);
            assertThat(
                    codeOf(
                        () ->
                            AdminServiceGrpc.newBlockingStub(strangerChannel)
                                .listServices(ListServicesRequest.getDefaultInstance())))
                .isEqualTo(Status.Code.UNAUTHENTICATED);
            assertThat(
                    codeOf(
                        () ->
                            AdminServiceGrpc.newBlockingStub(noCertificate)
                                .listServices(ListServicesRequest.getDefaultInstance())))
                .isEqualTo(Status.Code.UNAVAILABLE);
            assertThat(
                    codeOf(
                        () ->
                            AdminServiceGrpc.newBlockingStub(plaintext)
                                .listServices(ListServicesRequest.getDefaultInstance())))
                .isEqualTo(Status.Code.UNAVAILABLE);
          } finally {
            List.of(opsChannel, strangerChannel, noCertificate, plaintext)
                .forEach(Transport::close);
          }
        });
  }

  /**
   * Opens a Sync stream as a director; the first thing the coordinator sends back, or how it ended.
   */
  static Object firstAnswer(ManagedChannel channel) throws InterruptedException {
    java.util.concurrent.BlockingQueue<Object> answers =
        new java.util.concurrent.LinkedBlockingQueue<>();
    var reports =
        DirectorSyncGrpc.newStub(channel)
            .sync(
                new io.grpc.stub.StreamObserver<Snapshot>() {
                  @Override
                  public void onNext(Snapshot value) {
                    answers.add(value);
                  }

                  @Override
                  public void onError(Throwable t) {
                    answers.add(Status.fromThrowable(t).getCode());
                  }

                  @Override
                  public void onCompleted() {
                    answers.add(Status.Code.OK);
                  }
                });
    reports.onNext(
        DirectorReport.newBuilder()
            .setHello(Hello.newBuilder().setDirectorId("d1").setAddress("192.0.2.2").setRowBits(16))
            .build());
    Object answer = answers.poll(10, java.util.concurrent.TimeUnit.SECONDS);
    reports.onCompleted();
    return answer;
  }

  @Test
  void directorsProveWhoTheyAreOnTheSyncStreamOverMutualTls() throws Throwable {
    TestCertificates certs = new TestCertificates(dir);
    Path[] server = certs.issue("server", "coordinator");
    Path[] director = certs.issue("d1", "d1.example");
    Path[] ops = certs.issue("ops", "ops-team");
    AccessPolicy access =
        AccessPolicy.parse(List.of("cert d1.example director", "cert ops-team admin"), "test");
    withCoordinator(
        Optional.of(TlsFiles.server(server[0], server[1], Optional.of(certs.ca()))),
        access,
        c -> {
          String target = "localhost:" + c.port();
          ManagedChannel asDirector =
              Transport.channel(
                  target,
                  Optional.of(
                      TlsFiles.client(
                          certs.ca(), Optional.of(director[0]), Optional.of(director[1]))));
          ManagedChannel asOperator =
              Transport.channel(
                  target,
                  Optional.of(
                      TlsFiles.client(certs.ca(), Optional.of(ops[0]), Optional.of(ops[1]))));
          try {
            assertThat(firstAnswer(asDirector)).isInstanceOf(Snapshot.class);
            assertThat(firstAnswer(asOperator)).isEqualTo(Status.Code.PERMISSION_DENIED);
            assertThat(
                    codeOf(
                        () -> AdminServiceGrpc.newBlockingStub(asDirector).createService(CREATE)))
                .isEqualTo(Status.Code.PERMISSION_DENIED);
          } finally {
            List.of(asDirector, asOperator).forEach(Transport::close);
          }
        });
  }

  @Test
  void withCredentialsVeersZnodesAreClosedToOthers() throws Throwable {
    Coordinator.Config base = Coordinators.config("c1", dir.resolve("data"), Optional.empty());
    Coordinator.Config config = base.withZookeeperDigest("veer:zk-secret");
    try (Coordinator c = Coordinator.start(config);
        CuratorFramework outsider =
            CuratorFrameworkFactory.newClient(
                c.embeddedZooKeeper().orElseThrow(), new RetryOneTime(100));
        CuratorFramework insider =
            CuratorFrameworkFactory.builder()
                .connectString(c.embeddedZooKeeper().orElseThrow())
                .retryPolicy(new RetryOneTime(100))
                .authorization("digest", "veer:zk-secret".getBytes(StandardCharsets.UTF_8))
                .build()) {
      outsider.start();
      insider.start();
      assertThatThrownBy(() -> outsider.getData().forPath(Coordinator.DEFAULT_ROOT + "/cluster"))
          .isInstanceOf(KeeperException.NoAuthException.class);
      assertThatThrownBy(
              () -> outsider.setData().forPath(Coordinator.DEFAULT_ROOT + "/cluster", new byte[0]))
          .isInstanceOf(KeeperException.NoAuthException.class);
      assertThat(insider.getData().forPath(Coordinator.DEFAULT_ROOT + "/cluster")).isNotEmpty();
    }
  }
}
