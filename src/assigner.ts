import { AssignerProtocol, type PartitionAssigner } from 'kafkajs';

/**
 * Gives partition p of every subscribed topic to the same member, so that the correlator that
 * owns an entity's flows also gets its anomalies and its rekeyed events (all keyed by entity, all
 * with the same partition count). Partitions are dealt round-robin over the sorted member ids.
 */
export const CoPartitionedAssigner: PartitionAssigner = ({ cluster }) => ({
  name: 'CordonCoPartitioned',
  version: 0,
  async assign({ members, topics }) {
    const memberIds = members.map((m) => m.memberId).sort();
    const assignment = new Map<string, Record<string, number[]>>(memberIds.map((id) => [id, {}]));
    for (const topic of topics) {
      for (const { partitionId } of cluster.findTopicPartitionMetadata(topic)) {
        const owner = assignment.get(memberIds[partitionId % memberIds.length]!)!;
        (owner[topic] ??= []).push(partitionId);
      }
    }
    return [...assignment].map(([memberId, topicPartitions]) => ({
      memberId,
      memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 0, assignment: topicPartitions, userData: Buffer.alloc(0) }),
    }));
  },
  protocol({ topics }) {
    return { name: 'CordonCoPartitioned', metadata: AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: Buffer.alloc(0) }) };
  },
});
