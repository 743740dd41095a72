package dev.veer.bpf;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A cgroup program (sockops, ...) attached to a cgroup v2 directory through a BPF link. Other
 * programs attached to the same cgroup keep running alongside (links attach with multi-attach
 * semantics). {@link #close()} detaches it.
 *
 * <p>An unpinned link belongs to this process: the kernel detaches it when the process exits. A
 * pinned link ({@link #pinReplacing}) outlives a crashed process, so that the program goes on
 * keeping the maps that another program of that process (an XDP program left attached) still uses;
 * the next attachment pinned at the same path takes its place.
 */
public final class CgroupAttachment implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(CgroupAttachment.class);

  private final MemorySegment link;
  private final String programName;
  private final Path cgroup;
  private final AtomicBoolean closed = new AtomicBoolean();
  private volatile boolean pinned;

  private CgroupAttachment(MemorySegment link, String programName, Path cgroup) {
    this.link = link;
    this.programName = programName;
    this.cgroup = cgroup;
  }

  /** Attaches {@code program} to the cgroup v2 directory {@code cgroup} and its descendants. */
  public static CgroupAttachment attach(BpfProgram program, Path cgroup) {
    String subject = program.name() + ", " + cgroup;
    Fd fd;
    try {
      fd = Libc.open(cgroup.toString(), Libc.O_RDONLY | Libc.O_CLOEXEC);
    } catch (BpfException e) {
      throw new BpfException(
          "bpf_program__attach_cgroup(" + subject + ")",
          e.errno(),
          "cannot open the cgroup"
              + " directory "
              + cgroup
              + "; it must be a directory of a mounted cgroup v2 hierarchy",
          e);
    }
    // The link holds its own reference to the cgroup, so the fd is closed either way.
    try (fd) {
      MemorySegment link =
          LibbpfLog.capturing(
              capture ->
                  Libbpf.programAttachCgroup(
                      program.handle(), fd.intValue(), subject, capture::text));
      LOG.info("attached {} to cgroup {}", program.name(), cgroup);
      return new CgroupAttachment(link, program.name(), cgroup);
    }
  }

  /**
   * Pins the link at {@code pin}, so that it outlives this process. A link that an earlier process
   * left pinned there is detached first: this one has taken its place.
   */
  public void pinReplacing(Path pin) {
    if (closed.get()) {
      // The link is freed: libbpf would touch freed memory.
      throw new IllegalStateException(this + " is closed");
    }
    try {
      if (Files.deleteIfExists(pin)) {
        LOG.info("detached the {} an earlier process left pinned at {}", programName, pin);
      }
      Files.createDirectories(pin.getParent());
    } catch (IOException e) {
      throw new BpfException("bpf_link__pin(" + programName + ")", 0, pin.toString(), e);
    }
    Libbpf.linkPin(link, pin, programName);
    pinned = true;
  }

  public Path cgroup() {
    return cgroup;
  }

  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    if (pinned) {
      try {
        Libbpf.linkUnpin(link, programName);
      } catch (BpfException e) {
        LOG.warn("could not remove the pin of {} on {}: errno {}", programName, cgroup, e.errno());
      }
    }
    Libbpf.linkDestroy(link, programName + " on " + cgroup);
    LOG.info("detached {} from cgroup {}", programName, cgroup);
  }

  @Override
  public String toString() {
    return programName + " on cgroup " + cgroup;
  }
}
