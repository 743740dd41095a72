package dev.veer.bpf;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.io.IOException;
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
 * <p>An unpinned link belongs to this process: the kernel detaches it when the process exits.
 * A pinned link ({@link #pinReplacing}) outlives a crashed process, so that the program goes on
 * keeping the maps that another program of that process (an XDP program left attached) still
 * uses; the next attachment pinned at the same path takes its place.
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
    String operation = "bpf_program__attach_cgroup(" + program.name() + ", " + cgroup + ")";
    int fd;
    try {
      fd = Libc.open(cgroup.toString(), Libc.O_RDONLY | Libc.O_CLOEXEC);
    } catch (BpfException e) {
      throw new BpfException(operation, e.errno(), "cannot open the cgroup directory " + cgroup
          + "; it must be a directory of a mounted cgroup v2 hierarchy", e);
    }
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment state = Native.callState(arena);
      MemorySegment link = LibbpfLog.capturing(capture -> {
        MemorySegment attached = Libbpf.programAttachCgroup(state, program.handle(), fd);
        if (attached.equals(MemorySegment.NULL)) {
          throw new BpfException(operation, Native.errno(state), capture.text());
        }
        return attached;
      });
      LOG.info("attached {} to cgroup {}", program.name(), cgroup);
      return new CgroupAttachment(link, program.name(), cgroup);
    } finally {
      // The link holds its own reference to the cgroup.
      Libc.close(fd);
    }
  }

  /**
   * Pins the link at {@code pin}, so that it outlives this process. A link that an earlier
   * process left pinned there is detached first: this one has taken its place.
   */
  public void pinReplacing(Path pin) {
    String operation = "bpf_link__pin(" + programName + ")";
    try {
      if (Files.deleteIfExists(pin)) {
        LOG.info("detached the {} an earlier process left pinned at {}", programName, pin);
      }
      Files.createDirectories(pin.getParent());
    } catch (IOException e) {
      throw new BpfException(operation, 0, pin.toString(), e);
    }
    try (Arena arena = Arena.ofConfined()) {
      int err = Libbpf.linkPin(link, arena.allocateFrom(pin.toString()));
      if (err < 0) {
        throw new BpfException(operation, -err, pin.toString());
      }
    }
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
      int unpinned = Libbpf.linkUnpin(link);
      if (unpinned < 0) {
        LOG.warn("could not remove the pin of {} on {}: errno {}", programName, cgroup, -unpinned);
      }
    }
    int err = Libbpf.linkDestroy(link);
    if (err < 0) {
      throw new BpfException("bpf_link__destroy(" + programName + " on " + cgroup + ")", -err);
    }
    LOG.info("detached {} from cgroup {}", programName, cgroup);
  }

  @Override
  public String toString() {
    return programName + " on cgroup " + cgroup;
  }
}
