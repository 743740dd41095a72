package dev.veer.bpf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Attaches XDP programs inside a namespace this test creates (with a veth pair in it) and deletes
 * afterwards. No packet leaves that namespace.
 */
class XdpAttachmentTest {
  private static final String NS_NAME = "veer-ut-" + ProcessHandle.current().pid();
  private static NetworkNamespace ns;
  private static BpfObject floor;

  @BeforeAll
  static void createNamespace() throws Exception {
    BpfSystem.requireUsable();
    TestObjects.exec("ip", "netns", "add", NS_NAME);
    TestObjects.exec(
        "ip", "-n", NS_NAME, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1");
    for (String link : new String[] {"lo", "veth0", "veth1"}) {
      TestObjects.exec("ip", "-n", NS_NAME, "link", "set", link, "up");
    }
    ns = NetworkNamespace.named(NS_NAME);
    floor = BpfObject.load("/bpf/floor.o");
  }

  @AfterAll
  static void deleteNamespace() throws Exception {
    if (floor != null) {
      floor.close();
    }
    // Deleting the namespace removes its interfaces and any XDP program still attached.
    TestObjects.exec("ip", "netns", "del", NS_NAME);
  }

  @AfterEach
  void detachLeftovers() {
    XdpAttachment.detachAll(ns, "veth0");
  }

  @Test
  void attachQueryAndDetachNatively() {
    BpfProgram program = floor.program("veer_floor");
    assertThat(XdpAttachment.attachedProgramId(ns, "veth0")).isEmpty();
    try (XdpAttachment attachment = XdpAttachment.attach(program, ns, "veth0", XdpMode.NATIVE)) {
      assertThat(attachment.programId()).isEqualTo(program.id());
      assertThat(XdpAttachment.attachedProgramId(ns, "veth0")).contains(program.id());
      assertThat(XdpAttachment.attachedProgramId(ns, "veth1")).isEmpty();
      // The ip tool sees it natively attached too.
      assertThat(ns.call(() -> TestObjects.exec("ip", "-d", "link", "show", "veth0")))
          .contains("xdp")
          .contains("id " + program.id());
    }
    assertThat(XdpAttachment.attachedProgramId(ns, "veth0")).isEmpty();
  }

  @Test
  void attachingOverAnotherProgramFails() {
    BpfProgram program = floor.program("veer_floor");
    try (XdpAttachment first = XdpAttachment.attach(program, ns, "veth0", XdpMode.GENERIC)) {
      assertThatThrownBy(() -> XdpAttachment.attach(program, ns, "veth0", XdpMode.GENERIC))
          .isInstanceOfSatisfying(
              BpfException.class,
              e -> {
                assertThat(e.operation()).isEqualTo("bpf_xdp_attach(veth0, veer_floor, GENERIC)");
                assertThat(e.errno()).isIn(BpfException.EBUSY, BpfException.EEXIST);
                assertThat(e.detail()).contains("already runs XDP program id " + program.id());
              });
      assertThat(XdpAttachment.attachedProgramId(ns, "veth0")).contains(first.programId());
    }
  }

  @Test
  void closeLeavesSomeoneElsesProgramAlone() {
    try (BpfObject other = BpfObject.load("/bpf/floor.o")) {
      BpfProgram mine = floor.program("veer_floor");
      BpfProgram theirs = other.program("veer_floor");
      XdpAttachment stale = XdpAttachment.attach(mine, ns, "veth0", XdpMode.NATIVE);
      XdpAttachment.detachAll(ns, "veth0");
      try (XdpAttachment current = XdpAttachment.attach(theirs, ns, "veth0", XdpMode.NATIVE)) {
        stale.close();
        assertThat(XdpAttachment.attachedProgramId(ns, "veth0")).contains(theirs.id());
        assertThat(current.programId()).isEqualTo(theirs.id());
      }
      assertThat(XdpAttachment.attachedProgramId(ns, "veth0")).isEmpty();
    }
  }

  @Test
  void attachmentOutlivesItsObjectUntilClosed() {
    XdpAttachment attachment;
    int id;
    try (BpfObject own = BpfObject.load("/bpf/floor.o")) {
      id = own.program("veer_floor").id();
      attachment = XdpAttachment.attach(own.program("veer_floor"), ns, "veth0", XdpMode.ANY);
    }
    assertThat(XdpAttachment.attachedProgramId(ns, "veth0")).contains(id);
    attachment.close();
    attachment.close(); // idempotent
    assertThat(XdpAttachment.attachedProgramId(ns, "veth0")).isEmpty();
  }

  @Test
  void missingInterfaceIsAClearError() {
    assertThatThrownBy(
            () -> XdpAttachment.attach(floor.program("veer_floor"), ns, "nope0", XdpMode.NATIVE))
        .isInstanceOfSatisfying(
            BpfException.class,
            e -> {
              assertThat(e.errno()).isEqualTo(BpfException.ENODEV);
              assertThat(e.getMessage())
                  .contains("no interface 'nope0' in network namespace " + NS_NAME);
            });
    XdpAttachment.detachAll(ns, "nope0"); // nothing to do, no error
  }

  @Test
  void testRunWithTheNamespacesInterfaceAsIngress() {
    int ifindex = ns.ifindex("veth0");
    TestRunResult result =
        ns.call(
            () ->
                floor
                    .program("veer_floor")
                    .testRun(TestRunRequest.of(BpfObjectTest.frame()).withXdpContext(ifindex, 0)));
    assertThat(result.retval()).isEqualTo(3);
  }

  @Test
  void callRunsInTheNamespace() throws Exception {
    Object nsInode = Files.getAttribute(ns.path(), "unix:ino");
    Path threadNs = Path.of("/proc/thread-self/ns/net");
    assertThat(ns.call(() -> Files.getAttribute(threadNs, "unix:ino"))).isEqualTo(nsInode);
    assertThat(Files.getAttribute(threadNs, "unix:ino")).isNotEqualTo(nsInode);
    assertThat(NetworkNamespace.current().call(() -> Files.getAttribute(threadNs, "unix:ino")))
        .isEqualTo(Files.getAttribute(Path.of("/proc/self/ns/net"), "unix:ino"));

    assertThat(ns.ifindex("veth0")).isPositive();
    assertThatThrownBy(() -> NetworkNamespace.current().ifindex("veth0"))
        .isInstanceOfSatisfying(
            BpfException.class, e -> assertThat(e.errno()).isEqualTo(BpfException.ENODEV));
  }

  @Test
  void socketsMadeInCallBelongToTheNamespace() throws Exception {
    InetAddress loopback = InetAddress.getLoopbackAddress();
    try (ServerSocketChannel server =
        ns.call(() -> ServerSocketChannel.open().bind(new InetSocketAddress(loopback, 0)))) {
      int port = ((InetSocketAddress) server.getLocalAddress()).getPort();
      // Connected from the namespace's own loopback, whichever thread uses the socket later.
      try (SocketChannel client = ns.call(SocketChannel::open)) {
        client.connect(new InetSocketAddress(loopback, port));
        try (SocketChannel accepted = server.accept()) {
          assertThat(accepted.getRemoteAddress()).isEqualTo(client.getLocalAddress());
        }
      }
    }
  }

  @Test
  void callPassesResultsAndExceptionsBack() {
    var failure = new IllegalStateException("boom");
    assertThatThrownBy(
            () ->
                ns.run(
                    () -> {
                      throw failure;
                    }))
        .isSameAs(failure);
    assertThatThrownBy(
            () ->
                ns.call(
                    () -> {
                      throw new IOException("io");
                    }))
        .isInstanceOf(UncheckedIOException.class)
        .hasCauseInstanceOf(IOException.class);
    var worker = new AtomicReference<Thread>();
    assertThat(
            ns.call(
                () -> {
                  worker.set(Thread.currentThread());
                  return 42;
                }))
        .isEqualTo(42);
    assertThat(worker.get().isVirtual()).isFalse();
    assertThat(worker.get()).isNotSameAs(Thread.currentThread());
  }

  @Test
  void missingNamespaceIsAClearError() {
    assertThatThrownBy(() -> NetworkNamespace.named("veer-ut-missing").run(() -> {}))
        .isInstanceOfSatisfying(
            BpfException.class,
            e -> {
              assertThat(e.errno()).isEqualTo(BpfException.ENOENT);
              assertThat(e.getMessage()).contains("ip netns add veer-ut-missing");
            });
    assertThatThrownBy(() -> NetworkNamespace.named("../etc"))
        .isInstanceOf(IllegalArgumentException.class);
  }
}
