// Grants the local stack's Kafka users their SCRAM credentials and ACLs through the Admin API,
// the same calls on Kafka 3.x and 4.x (the CLI tools moved between those). Run by scripts/stack.sh:
//
//   java -cp '<kafka libs>/*' scripts/kafka-access.java <bootstrap host:port>   < grants
//
// One grant per stdin line (stdin, so passwords never show in a process list):
//   user  <SCRAM-SHA-256|SCRAM-SHA-512> <name> <password>
//   allow <TOPIC|GROUP|TRANSACTIONAL_ID> <resource prefix> <principal>
// Both calls are upserts: running it again with the same lines changes nothing.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialAlteration;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

public class KafkaAccess {
  private static final int SCRAM_ITERATIONS = 8192;

  public static void main(String[] args) throws Exception {
    if (args.length != 1) throw new IllegalArgumentException("usage: kafka-access.java <bootstrap host:port> < grants");
    List<UserScramCredentialAlteration> users = new ArrayList<>();
    List<AclBinding> acls = new ArrayList<>();
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    for (String line; (line = in.readLine()) != null; ) {
      String[] f = line.trim().split("\\s+");
      if (f.length == 4 && f[0].equals("user")) users.add(user(f[1], f[2], f[3]));
      else if (f.length == 4 && f[0].equals("allow")) acls.add(allow(f[1], f[2], f[3]));
      else if (!line.isBlank()) throw new IllegalArgumentException("bad grant line starting with '" + f[0] + "'");
    }
    Properties props = new Properties();
    props.put("bootstrap.servers", args[0]);
    props.put("client.id", "cordon-stack-access");
    try (Admin admin = Admin.create(props)) {
      // one request each: a request may not alter one user twice, even for two mechanisms
      for (UserScramCredentialAlteration user : users) admin.alterUserScramCredentials(List.of(user)).all().get();
      if (!acls.isEmpty()) admin.createAcls(acls).all().get();
    }
    System.out.println("granted " + users.size() + " SCRAM credentials and " + acls.size() + " ACLs");
  }

  private static UserScramCredentialAlteration user(String mechanism, String name, String password) {
    ScramMechanism m = ScramMechanism.fromMechanismName(mechanism);
    if (m == ScramMechanism.UNKNOWN) throw new IllegalArgumentException("unknown SCRAM mechanism " + mechanism);
    return new UserScramCredentialUpsertion(name, new ScramCredentialInfo(m, SCRAM_ITERATIONS), password);
  }

  private static AclBinding allow(String type, String prefix, String principal) {
    ResourcePattern resource = new ResourcePattern(ResourceType.fromString(type), prefix, PatternType.PREFIXED);
    return new AclBinding(resource, new AccessControlEntry(principal, "*", AclOperation.ALL, AclPermissionType.ALLOW));
  }
}
