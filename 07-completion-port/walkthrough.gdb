# walkthrough.gdb - 07-completion-port: a guided tour. Start with: make gdb M=07
# (ARGS="-t 2" for two workers; the default is one per CPU.) The stops follow
# one client: its accept completes, its recv and send complete, it leaves;
# then SIGTERM. "if c->handle.fd != -1" and "if error == 0": only a
# conn with a client, not the ones reserved for accepts, which shutdown
# cancels (their cancelled accepts would stop the tour --accepts times).
set pagination off
set print pretty on
handle SIGPIPE nostop noprint pass
handle SIGTERM nostop print pass
handle SIGINT nostop print pass
# A new thread is news the first time only.
set print thread-events off

break on_accept_complete if error == 0
commands
  silent
  echo \n[tour 1] on_accept_complete: GetQueuedCompletionStatus returned an AcceptEx\n
  echo In the worker's frame, its out-parameters: fd (the new socket), key (the\n
  echo listener's), io (the OVERLAPPED, whose accept_handle leads to the conn c)\n
  up
  print done
  down
  print c->io->op
  print worker_id
  echo Main sleeps in sigsuspend, the other workers in cport_get:\n
  info threads
  if $tour_batch
    continue
  end
end

break conn_open
commands
  silent
  echo \n[tour 2] conn_open: the conn reserved for this accept takes the socket\n
  print fd
  echo Not yet associated (fd -1); cport_associate (CreateIoCompletionPort) will\n
  echo set fd, and bump the generation: a new life for this per-socket context\n
  print c->handle
  echo refs: 1, the accept's\n
  print c->refs
  if $tour_batch
    continue
  end
end

break conn_post
commands
  silent
  echo \n[tour 3] conn_post: post this conn's next operation (WSARecv or WSASend)\n
  print op
  echo refs: operations in flight on it, plus the completion being handled now\n
  print c->refs
  echo The bytes waiting to be echoed (a send sends them, a recv appends):\n
  print c->echo
  if $tour_batch
    continue
  end
end

break conn_release if c->handle.fd != -1
commands
  silent
  echo \n[tour 4] conn_release: a handler is done with its completion; drop its reference\n
  print c->refs
  echo Each thread: this worker, the others in cport_get (one in poll, the rest on cq_lock):\n
  thread apply all bt 4
  if $tour_batch
    continue
  end
end

break on_recv_complete
commands
  silent
  echo \n[tour 5] on_recv_complete: a WSARecv completed (bytes 0: the client left)\n
  print bytes
  print error
  echo c is the completion key; the bytes are already in its buffer, not yet counted:\n
  print c->echo
  print worker_id
  if $tour_batch
    continue
  end
end

break on_send_complete
commands
  silent
  echo \n[tour 6] on_send_complete: a WSASend completed; all sent? then the next recv\n
  print bytes
  print error
  print worker_id
  if $tour_batch
    continue
  end
end

break conn_done if c->handle.fd != -1
commands
  silent
  echo \n[tour 7] conn_done: the conn's last operation ended (error 0: the client left)\n
  print what
  print error
  print c->peer
  echo When refs reaches 0 in conn_release, conn_close closes the socket, reuses c\n
  print c->refs
  if $tour_batch
    continue
  end
end

break conn_close if c->handle.fd != -1
commands
  silent
  echo \n[tour 8] conn_close: no reference left, nothing in flight: close, back to the pool\n
  print c->handle.fd
  print c->refs
  print conn_pool.free_count
  if $tour_batch
    continue
  end
end

break shutdown_all
commands
  silent
  echo \n[tour 9] shutdown_all: SIGTERM ended main's sigsuspend; cancel, drain, quit\n
  print stats
  echo The accepts still posted, each with a reserved conn; all will be cancelled:\n
  print accepts_posted
  print port.in_flight
  if $tour_batch
    continue
  end
end

break cport_post_message
commands
  silent
  echo \n[tour 10] cport_post_message: every completion has been taken (in_flight 0);\n
  echo main posts one quit message per worker (PostQueuedCompletionStatus)\n
  print message
  print port->in_flight
  info threads
  if $tour_batch
    continue
  end
end

echo Tour loaded. Type "run", then connect: nc 127.0.0.1 9007\n
