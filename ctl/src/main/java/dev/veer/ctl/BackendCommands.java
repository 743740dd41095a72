package dev.veer.ctl;

import dev.veer.proto.admin.v1.AddBackendRequest;
import dev.veer.proto.admin.v1.RemoveBackendRequest;
import dev.veer.proto.admin.v1.Service;
import dev.veer.proto.admin.v1.SetBackendStateRequest;
import dev.veer.proto.types.v1.BackendState;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

@Command(name = "backend", description = "Add, drain, remove backends and set their state.",
    subcommands = {BackendCommands.Add.class, BackendCommands.Drain.class, BackendCommands.Remove.class,
        BackendCommands.SetState.class})
final class BackendCommands {
  @ParentCommand
  VeerCtl ctl;

  void show(Service service) {
    ctl.print(service, () -> ServiceCommands.printService(ctl.out(), service));
  }

  static BackendState state(String value) {
    return BackendState.valueOf(ServiceCommands.upper(value, "STATE", "active, filling, draining, inactive",
        BackendState.class));
  }

  @Command(name = "add", description = "Add a backend; it takes its rows while their previous owners stay next hops.")
  static final class Add implements Runnable {
    @ParentCommand
    BackendCommands parent;

    @Parameters(index = "0", paramLabel = "SERVICE")
    String service;

    @Parameters(index = "1", paramLabel = "ADDRESS")
    String address;

    @Option(names = "--state", paramLabel = "STATE", defaultValue = "filling",
        description = "Initial state: filling (default), active, draining, inactive.")
    String state;

    @Override
    public void run() {
      try (AdminClient client = parent.ctl.client()) {
        parent.show(client.call(s -> s.addBackend(AddBackendRequest.newBuilder().setService(service)
            .setAddress(address).setState(state(state)).build())));
      }
    }
  }

  @Command(name = "drain", description = "Take no new connections on a backend; its existing ones go on.")
  static final class Drain implements Runnable {
    @ParentCommand
    BackendCommands parent;

    @Parameters(index = "0", paramLabel = "SERVICE")
    String service;

    @Parameters(index = "1", paramLabel = "ADDRESS")
    String address;

    @Override
    public void run() {
      try (AdminClient client = parent.ctl.client()) {
        parent.show(client.call(s -> s.setBackendState(SetBackendStateRequest.newBuilder().setService(service)
            .setAddress(address).setState(BackendState.DRAINING).build())));
      }
    }
  }

  @Command(name = "remove", description = "Remove a backend (drain it first, or use --force).")
  static final class Remove implements Runnable {
    @ParentCommand
    BackendCommands parent;

    @Parameters(index = "0", paramLabel = "SERVICE")
    String service;

    @Parameters(index = "1", paramLabel = "ADDRESS")
    String address;

    @Option(names = "--force", description = "Remove it even if active: its connections break.")
    boolean force;

    @Override
    public void run() {
      try (AdminClient client = parent.ctl.client()) {
        parent.show(client.call(s -> s.removeBackend(RemoveBackendRequest.newBuilder().setService(service)
            .setAddress(address).setForce(force).build())));
      }
    }
  }

  @Command(name = "set-state", description = "Set a backend's state: active, filling, draining or inactive.")
  static final class SetState implements Runnable {
    @ParentCommand
    BackendCommands parent;

    @Parameters(index = "0", paramLabel = "SERVICE")
    String service;

    @Parameters(index = "1", paramLabel = "ADDRESS")
    String address;

    @Parameters(index = "2", paramLabel = "STATE")
    String state;

    @Override
    public void run() {
      try (AdminClient client = parent.ctl.client()) {
        parent.show(client.call(s -> s.setBackendState(SetBackendStateRequest.newBuilder().setService(service)
            .setAddress(address).setState(state(state)).build())));
      }
    }
  }
}
