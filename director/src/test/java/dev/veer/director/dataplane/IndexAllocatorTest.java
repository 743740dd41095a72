package dev.veer.director.dataplane;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class IndexAllocatorTest {
  final AtomicLong now = new AtomicLong();
  final IndexAllocator allocator = new IndexAllocator(1, 4, "test indices", now::get);

  @Test
  void handsOutNeverUsedIndicesFirst() {
    assertThat(allocator.allocate()).isEqualTo(1);
    assertThat(allocator.allocate()).isEqualTo(2);
    allocator.release(1);
    assertThat(allocator.allocate()).isEqualTo(3);
  }

  @Test
  void reusesAReleasedIndexOnlyAfterTheQuarantineOldestFirst() {
    allocator.allocate();
    allocator.allocate();
    allocator.allocate();
    allocator.release(2);
    now.addAndGet(IndexAllocator.QUARANTINE.toNanos() / 2);
    allocator.release(1);
    assertThatThrownBy(allocator::allocate)
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("released less than");
    now.addAndGet(IndexAllocator.QUARANTINE.toNanos() / 2);
    assertThat(allocator.allocate()).isEqualTo(2);
    assertThatThrownBy(allocator::allocate).isInstanceOf(IllegalStateException.class);
    now.addAndGet(IndexAllocator.QUARANTINE.toNanos());
    assertThat(allocator.allocate()).isEqualTo(1);
  }

  @Test
  void anIndexGivenBackIsFreeAtOnceAndFirst() {
    allocator.allocate();
    allocator.allocate();
    allocator.allocate();
    allocator.release(1);
    allocator.giveBack(3);
    assertThat(allocator.allocate()).isEqualTo(3);
    assertThatThrownBy(allocator::allocate).hasMessageContaining("released less than");
  }

  @Test
  void saysWhenEverythingIsInUse() {
    allocator.allocate();
    allocator.allocate();
    allocator.allocate();
    assertThatThrownBy(allocator::allocate).hasMessage("all 4 test indices are in use");
  }
}
