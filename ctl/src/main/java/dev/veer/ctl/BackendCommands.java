package dev.veer.ctl;

import dev.veer.proto.admin.v1.AddBackendRequest;
import dev.veer.proto.admin.v1.AdminServiceGrpc;
import dev.veer.proto.admin.v1.RemoveBackendRequest;
import dev.veer.proto.admin.v1.Service;
import dev.veer.proto.admin.v1.SetBackendStateRequest;
import dev.veer.proto.admin.v1.SetBackendWeightRequest;
import dev.veer.proto.types.v1.BackendState;
import java.util.function.Function;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;

@Command(
    name = "backend",
    description = "Add, drain, remove backends and set their state or weight.",
    subcommands = {
      BackendCommands.Add.class,
      BackendCommands.Drain.class,
      BackendCommands.Remove.class,
      BackendCommands.SetState.class,
      BackendCommands.SetWeight.class
    })
final class BackendCommands {
  @ParentCommand VeerCtl ctl;

  /** The backend a command is about: its service and address. */
  static final class Target {
    @Parameters(index = "0", paramLabel = "SERVICE")
    String service;

    @Parameters(index = "1", paramLabel = "ADDRESS")
    String address;
  }

  /** Makes the call and prints the service as it is afterwards. */
  void change(Function<AdminServiceGrpc.AdminServiceBlockingStub, Service> call) {
    try (AdminClient client = ctl.client()) {
      Service service = client.call(call);
      ctl.print(service, () -> ServiceCommands.printService(ctl.out(), service));
    }
  }

  static BackendState state(String value) {
    return BackendState.valueOf(
        ServiceCommands.upper(
            value, "STATE", "active, filling, draining, inactive", BackendState.class));
  }

  @Command(
      name = "add",
      description = "Add a backend; it takes its rows while their previous owners stay next hops.")
  static final class Add implements Runnable {
    @ParentCommand BackendCommands parent;

    @Mixin Target target;

    @Mixin ChangeOptions change;

    @Option(
        names = "--state",
        paramLabel = "STATE",
        defaultValue = "filling",
        description = "Initial state: filling (default), active, draining, inactive.")
    String state;

    @Option(
        names = "--weight",
        paramLabel = "1-10000",
        defaultValue = "100",
        description = "Its share of primary rows relative to the others' weights (default 100).")
    int weight;

    @Override
    public void run() {
      parent.change(
          s ->
              s.addBackend(
                  AddBackendRequest.newBuilder()
                      .setService(target.service)
                      .setAddress(target.address)
                      .setState(state(state))
                      .setWeight(weight)
                      .setForce(change.force)
                      .setDryRun(change.dryRun)
                      .build()));
    }
  }

  @Command(
      name = "drain",
      description =
          "Take no new connections on a backend; its existing ones go on. The drain"
              + " ends by itself (the backend becomes inactive) when its proxy agent reports no connection left.")
  static final class Drain implements Runnable {
    @ParentCommand BackendCommands parent;

    @Mixin Target target;

    @Mixin ChangeOptions change;

    @Option(
        names = "--timeout",
        paramLabel = "SECONDS",
        defaultValue = "0",
        description =
            "End the drain after this long even with connections left (default: wait for them).")
    int timeoutSeconds;

    @Override
    public void run() {
      parent.change(
          s ->
              s.setBackendState(
                  SetBackendStateRequest.newBuilder()
                      .setService(target.service)
                      .setAddress(target.address)
                      .setState(BackendState.DRAINING)
                      .setDrainTimeoutSeconds(timeoutSeconds)
                      .setForce(change.force)
                      .setDryRun(change.dryRun)
                      .build()));
    }
  }

  @Command(
      name = "remove",
      description =
          "Remove a backend (drain it first, or use --force: an active backend's connections"
              + " break).")
  static final class Remove implements Runnable {
    @ParentCommand BackendCommands parent;

    @Mixin Target target;

    @Mixin ChangeOptions change;

    @Override
    public void run() {
      parent.change(
          s ->
              s.removeBackend(
                  RemoveBackendRequest.newBuilder()
                      .setService(target.service)
                      .setAddress(target.address)
                      .setForce(change.force)
                      .setDryRun(change.dryRun)
                      .build()));
    }
  }

  @Command(
      name = "set-state",
      description = "Set a backend's state: active, filling, draining or inactive.")
  static final class SetState implements Runnable {
    @ParentCommand BackendCommands parent;

    @Mixin Target target;

    @Mixin ChangeOptions change;

    @Parameters(index = "2", paramLabel = "STATE")
    String state;

    @Override
    public void run() {
      parent.change(
          s ->
              s.setBackendState(
                  SetBackendStateRequest.newBuilder()
                      .setService(target.service)
                      .setAddress(target.address)
                      .setState(state(state))
                      .setForce(change.force)
                      .setDryRun(change.dryRun)
                      .build()));
    }
  }

  @Command(
      name = "set-weight",
      description =
          "Set a backend's weight, 1-10000: its share of primary rows relative to the others'. The"
              + " rows it gains or loses keep their previous primary as a later hop.")
  static final class SetWeight implements Runnable {
    @ParentCommand BackendCommands parent;

    @Mixin Target target;

    @Mixin ChangeOptions change;

    @Parameters(index = "2", paramLabel = "WEIGHT")
    int weight;

    @Override
    public void run() {
      parent.change(
          s ->
              s.setBackendWeight(
                  SetBackendWeightRequest.newBuilder()
                      .setService(target.service)
                      .setAddress(target.address)
                      .setWeight(weight)
                      .setForce(change.force)
                      .setDryRun(change.dryRun)
                      .build()));
    }
  }
}
